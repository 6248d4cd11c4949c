"""The event stream decoder, fed bytes the way a network splits them."""

import pytest

from taskstream.client.sse import Decoder, Message

STREAM = (
    "\ufeffretry: 2000\r\n\r\n"
    ": keep-alive\n\n"
    'id: 1-0\nevent: queued\ndata: {"a":\r\ndata:  1}\n\n'
    "id: 2-0\revent: started\rdata:x\r\r"
    "event: ignored\n\n"  # no data: nothing dispatched
    "data: no id or type\r\n\r\n"
    "id: bad\0id\nretry: soon\ndata: last\n\n"
).encode()

EXPECTED = [
    Message("queued", '{"a":\n 1}', "1-0"),
    Message("started", "x", "2-0"),
    Message("message", "no id or type", "2-0"),
    Message("message", "last", "2-0"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_messages_are_the_same_however_the_bytes_are_split(size: int) -> None:
    decoder = Decoder()
    messages = []
    for start in range(0, len(STREAM), size):
        messages += decoder.feed(STREAM[start : start + size])
    assert messages == EXPECTED
    assert decoder.retry == 2000


def test_a_cr_last_in_a_chunk_waits_to_see_whether_an_lf_follows() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == [Message("message", "a", "")]


def test_a_character_split_across_chunks_is_decoded_whole() -> None:
    encoded = "data: \U0001f600\n\n".encode()
    decoder = Decoder()
    assert decoder.feed(encoded[:8]) == []
    assert decoder.feed(encoded[8:]) == [Message("message", "\U0001f600", "")]
