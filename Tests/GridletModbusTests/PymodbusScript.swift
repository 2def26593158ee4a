/// Independent Modbus TCP server for the interop test, run with `python3 -c`.
/// Kept inline (not a fixture file) because the package declares no test resources.
let pymodbusServerScript = #"""
"""Independent Modbus TCP server for gridlet's interop test (pymodbus >= 3.10).

usage: python3 -c SCRIPT PORT

Serves unit 1 (and any unit) with known values at 0-based PDU addresses:
  input   100..101  float32 hi_first  230.5
  input   102..103  float32 lo_first  -1234.25
  input   104..105  uint32  hi_first  305419896 (0x12345678)
  input   106       int16             -1234
  input   107..108  int32   lo_first  -70000
  holding 200       uint16            4242
"""
import struct
import sys

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartTcpServer


def words(fmt, value):
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def main():
    port = int(sys.argv[1])
    ir = [0] * 300
    hr = [0] * 300
    ir[100:102] = words("f", 230.5)
    ir[102:104] = list(reversed(words("f", -1234.25)))
    ir[104:106] = words("I", 0x12345678)
    ir[106:107] = words("h", -1234)
    ir[107:109] = list(reversed(words("i", -70000)))
    hr[200] = 4242
    # pymodbus' device context adds 1 to the PDU address, so the block starts at 1.
    device = ModbusDeviceContext(ir=ModbusSequentialDataBlock(1, ir), hr=ModbusSequentialDataBlock(1, hr))
    context = ModbusServerContext(devices=device, single=True)
    StartTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    main()
"""#
