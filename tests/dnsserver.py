"""A real DNS server for tests: UDP on 127.0.0.1, answering from a dict, built with dnspython.

`doctor --dns --nameserver 127.0.0.1:PORT` asks it over a real socket, so the tests exercise the
resolver, the wire format and long TXT records without ever reaching the network.
"""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


def txt(value: str) -> str:
    """A TXT record's text: quoted strings of at most 255 characters (a DKIM key needs two)."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


class DnsServer:
    """`with DnsServer({("example.org", "TXT"): [txt("v=spf1 -all")]}) as server:`; `server.address` for --nameserver.

    Names are given without the trailing dot; a name with no records at all is NXDOMAIN, a name with
    records of other types answers empty (NODATA). Every question asked is kept in `asked`.
    """

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = {(name.lower().rstrip("."), kind.upper()): texts for (name, kind), texts in records.items()}
        self.asked: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        for question in query.question:
            name = question.name.to_text().lower().rstrip(".")
            kind = dns.rdatatype.to_text(question.rdtype)
            self.asked.append((name, kind))
            texts = self.records.get((name, kind))
            if texts:
                response.answer.append(dns.rrset.from_text(question.name, 300, "IN", kind, *texts))
            elif not any(known == name for known, _kind in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            self.sock.sendto(self._answer(data), peer)

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
