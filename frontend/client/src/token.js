/**
 * Where a client's token comes from: a string given once, or a function asked for a fresh one.
 *
 * A function's answer is kept until the API refuses it; `refresh(refused)` then asks again, once
 * for however many requests were refused with that same token, so a burst of 401s costs one call.
 * The function may answer a string or a watch token (`{ token, expires_at, scope }`).
 *
 * The token is never logged and never put in an error: a failing function is reported by its
 * own message only (the REST layer turns it into an ApiError of type "token_error").
 */

/** `{ get(), refresh(refused), current(), refreshable }`, or null without a token. */
export function createTokenSource(token) {
  if (token === undefined || token === null || token === "") return null;
  if (typeof token === "string") {
    return { get: async () => token, refresh: async () => token, current: () => token, refreshable: false };
  }
  if (typeof token !== "function") throw new TypeError("token must be a string or a function returning one");
  let value = null;
  let pending = null;

  function ask() {
    const asking = (async () => tokenText(await token()))();
    pending = asking;
    asking.then(
      (text) => {
        if (pending === asking) value = text;
      },
      () => {},
    );
    return asking.finally(() => {
      if (pending === asking) pending = null;
    });
  }

  return {
    get: () => (value !== null ? Promise.resolve(value) : (pending ?? ask())),
    refresh(refused) {
      if (pending) return pending;
      if (value !== null && value !== refused) return Promise.resolve(value);
      value = null;
      return ask();
    },
    current: () => value,
    refreshable: true,
  };
}

function tokenText(answer) {
  const text = typeof answer === "string" ? answer : answer?.token;
  if (typeof text === "string" && text) return text;
  throw new TypeError("the token function gave neither a string nor a watch token");
}
