# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A tiny authoritative DNS server on 127.0.0.1 (UDP) for domain-verification tests.

Speaks real DNS on the wire (dnspython builds the answers), serving the TXT records the
test publishes; every other name is NXDOMAIN.
"""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class TxtServer:
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="test-dns")

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, value: str) -> None:
        self.records.setdefault(name.rstrip(".").lower(), []).append(value)

    def start(self) -> TxtServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            answer = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            values = self.records.get(name)
            if values is None:
                answer.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                answer.answer.append(dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT,
                    [f'"{value}"' for value in values]))
            self._socket.sendto(answer.to_wire(), peer)
