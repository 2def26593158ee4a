"""A site meter whose import register rises at a known rate, for checking energy to the Wh: an
Eastron SDM630 over Modbus TCP (standard library sockets, function 4 only), serving the fixed values
of conftest.SDM630_VALUES except the import register (72), which is computed at every request as
base_kwh + kwh_per_s * (now - t0). So the energy over any span of time is exactly
kwh_per_s * its length (up to float32 rounding of the register, about 8 mWh at 100 kWh)."""
import socketserver
import struct
import threading
import time

from conftest import SDM630_VALUES, free_port


class RampMeter:
    def __init__(self, base_kwh=100.0, kwh_per_s=0.001, values=SDM630_VALUES):
        self.base_kwh, self.kwh_per_s = base_kwh, kwh_per_s
        self.t0 = time.time()
        self.values = dict(values)
        self.values[52] = kwh_per_s * 3_600_000   # total power consistent with the ramp, W
        self.port = free_port()
        meter = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                sock = self.request
                while True:
                    head = self._read(sock, 7)
                    if head is None:
                        return
                    tid, pid, length, unit = struct.unpack(">HHHB", head)
                    pdu = self._read(sock, length - 1)
                    if pdu is None:
                        return
                    fc = pdu[0]
                    if fc != 4 or len(pdu) != 5:
                        reply = bytes([fc | 0x80, 1])
                    else:
                        addr, count = struct.unpack(">HH", pdu[1:5])
                        regs = meter.registers(time.time())
                        data = b"".join(struct.pack(">H", regs.get(a, 0)) for a in range(addr, addr + count))
                        reply = bytes([4, len(data)]) + data
                    sock.sendall(struct.pack(">HHHB", tid, pid, len(reply) + 1, unit) + reply)

            @staticmethod
            def _read(sock, n):
                buf = b""
                while len(buf) < n:
                    chunk = sock.recv(n - len(buf))
                    if not chunk:
                        return None
                    buf += chunk
                return buf

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def import_kwh(self, t):
        return self.base_kwh + self.kwh_per_s * (t - self.t0)

    def registers(self, t):
        vals = dict(self.values)
        vals[72] = self.import_kwh(t)
        regs = {}
        for addr, v in vals.items():
            hi, lo = struct.unpack(">HH", struct.pack(">f", v))
            regs[addr], regs[addr + 1] = hi, lo
        return regs

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
