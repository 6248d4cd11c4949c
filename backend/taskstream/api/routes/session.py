"""Browser sessions: trade an API key for an HttpOnly cookie that EventSource sends by itself."""

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from taskstream.api.auth import COOKIE, issue_session, name_for_key, read_session
from taskstream.api.deps import SettingsDep
from taskstream.api.problems import responses
from taskstream.errors import Unauthorized

router = APIRouter(prefix="/api/session", tags=["session"])


class SignIn(BaseModel):
    api_key: str = Field(min_length=1, max_length=256, description="One of the API's keys.")


class Session(BaseModel):
    auth_required: bool = Field(description="Whether the API needs a key at all.")
    # The caller's name, under the name the page has always read.
    principal: str | None = Field(None, description="Who this session is, if signed in.")


@router.get("", operation_id="getSession", summary="Who am I", response_model=Session)
async def current(request: Request, settings: SettingsDep) -> Session:
    cookie = request.cookies.get(COOKIE)
    name = read_session(settings, cookie) if cookie and settings.auth_required else None
    return Session(auth_required=settings.auth_required, principal=name)


@router.post(
    "",
    operation_id="createSession",
    summary="Sign in with an API key (sets the session cookie)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 422),
)
async def sign_in(body: SignIn, settings: SettingsDep, response: Response) -> None:
    if name_for_key(settings, body.api_key) is None:
        raise Unauthorized("the API key is not valid")
    response.set_cookie(
        COOKIE,
        issue_session(settings, body.api_key),
        max_age=settings.session_ttl_seconds,
        path="/api",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )


@router.delete(
    "",
    operation_id="deleteSession",
    summary="Sign out (clears the session cookie)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def sign_out(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/api", httponly=True, samesite="strict")
