"""Problem details as RFC 9457 asks: `type` a URI that documents the problem, `instance` the
request it happened to."""

from tests.support.stack import Stack

MISSING = "0" * 32


def test_a_problem_names_its_type_and_instance_and_the_type_documents_itself(
    stack: Stack,
) -> None:
    answer = stack.http.get(f"/api/tasks/{MISSING}")
    assert answer.status_code == 404
    problem = answer.json()
    assert problem["type"] == "/problems/not_found"
    assert problem["instance"] == f"/api/tasks/{MISSING}"
    documented = stack.http.get(problem["type"])
    assert documented.status_code == 200
    assert documented.json()["status"] == 404
    assert documented.json()["about"]


def test_every_problem_type_is_listed_and_each_resolves(stack: Stack) -> None:
    listed = stack.http.get("/problems").json()
    codes = {entry["code"] for entry in listed}
    assert {"not_found", "token_expired", "forbidden", "validation_error", "unavailable"} <= codes
    for entry in listed:
        assert stack.http.get(f"/problems/{entry['code']}").json() == entry
    unknown = stack.http.get("/problems/no_such_thing")
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "/problems/not_found"
    # Problems the API's own checks raise resolve too: a validation failure, a refused method.
    for response in (
        stack.http.post("/api/tasks", json={"kind": "add", "params": {"x": "one"}}),
        stack.http.put("/api/tasks"),
    ):
        assert stack.http.get(response.json()["type"]).status_code == 200, response.json()
