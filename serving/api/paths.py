"""Customer ids in paths: any id the data contract keeps, so every customer trained on can be asked for and erased.

Starlette decodes the path before routing, so an id holding '/' (sent as %2F) or a newline (%0A) reaches the
router decoded: customer routes name the parameter ``{customer_id:customer}``, whose convertor matches across
segments and newlines, and the parameter is then checked against the data contract's rule. The convertor is
registered when this module is imported, which every route module defining a customer path does first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Request
from starlette.convertors import Convertor, register_url_convertor

from serving.schemas import CUSTOMER_ID_PATTERN, CUSTOMER_ID_RULE


class CustomerIdConvertor(Convertor[str]):
    """Any non-empty text, '/' and newlines included (the id's rule is checked by the parameter, not here)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("customer", CustomerIdConvertor())

CustomerPath = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN,
                                   description=f"Customer id ({CUSTOMER_ID_RULE}), percent-encoded ('/' as %2F).")]

SUB_RESOURCES = ("/recommendations", "/scores", "/profile")


async def erasure_target(request: Request) -> None:
    """405 for ``DELETE /v1/customers/x/scores`` and its kin: a sub-resource, not a customer named ``x/scores``.

    A '/' inside the id of a DELETE must come percent-encoded (the raw path keeps the difference the decoded one
    loses), so a stray DELETE on a customer's scores can never erase someone.
    """
    raw = request.scope.get("raw_path")
    if raw is None:
        return
    tail = raw.split(b"?", 1)[0].removeprefix(b"/v1/customers/")
    if b"/" in tail and tail.endswith(tuple(s.encode() for s in SUB_RESOURCES)):
        raise HTTPException(405, "Method Not Allowed", headers={"Allow": "GET"})
