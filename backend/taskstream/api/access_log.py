"""Keeps watch tokens out of the access log.

An EventSource cannot send headers, so a page sends its watch token as `?access_token=` on the
event streams: the one credential that travels in a URL. uvicorn's access log writes each
request's path with its query; this filter masks the parameter's value before any handler sees
the record. (The compose nginx masks it in its own log the same way.)
"""

import logging
import re

PARAMETER = "access_token"
_VALUE = re.compile(rf"([?&]{PARAMETER}=)[^&\s\"]*")
MASK = "***"


def mask(text: str) -> str:
    return _VALUE.sub(rf"\g<1>{MASK}", text)


class MaskAccessTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = mask(record.msg)
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    """Adds the filter to the access logger, once however many apps a process builds."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, MaskAccessTokens) for f in logger.filters):
        logger.addFilter(MaskAccessTokens())
