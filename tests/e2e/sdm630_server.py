"""An independent Modbus TCP server (pymodbus) serving an Eastron SDM630's input registers
with fixed, known values: the meter side of gridlet's end-to-end tests.

usage: python3 sdm630_server.py PORT VALUES_JSON
VALUES_JSON maps SDM630 register addresses (0-based PDU, decimal) to float values.
"""
import json
import struct
import sys

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartTcpServer


def words(value):
    raw = struct.pack(">f", value)
    return [int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big")]


def main():
    port = int(sys.argv[1])
    values = json.loads(sys.argv[2])
    ir = [0] * 400
    for addr, v in values.items():
        a = int(addr)
        ir[a:a + 2] = words(float(v))
    # pymodbus' device context adds 1 to the PDU address, so the blocks start at 1.
    device = ModbusDeviceContext(ir=ModbusSequentialDataBlock(1, ir), hr=ModbusSequentialDataBlock(1, [0] * 400))
    context = ModbusServerContext(devices=device, single=True)
    StartTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    main()
