"""An independent Modbus server (pymodbus) serving given registers over TCP or RTU (serial).

usage: python3 profile_server.py tcp PORT UNIT MAP_JSON
       python3 profile_server.py rtu-over-tcp PORT UNIT MAP_JSON   (RTU frames over raw TCP)
       python3 profile_server.py rtu DEVICE UNIT MAP_JSON [PARITY]
MAP_JSON: {"input": {"ADDRESS": [REG, ...]}, "holding": {...}} with 0-based PDU addresses.
"""
import json
import sys

from pymodbus import FramerType
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartSerialServer, StartTcpServer


def main():
    mode, where, unit, regmap = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    tables = {"input": [0] * 2000, "holding": [0] * 2000}
    for table, entries in regmap.items():
        for addr, regs in entries.items():
            a = int(addr)
            tables[table][a:a + len(regs)] = regs
    # pymodbus' device context adds 1 to the PDU address, so the blocks start at 1.
    device = ModbusDeviceContext(ir=ModbusSequentialDataBlock(1, tables["input"]),
                                 hr=ModbusSequentialDataBlock(1, tables["holding"]))
    context = ModbusServerContext(devices={unit: device}, single=False)
    if mode == "tcp":
        StartTcpServer(context=context, address=("127.0.0.1", int(where)))
    elif mode == "rtu-over-tcp":
        StartTcpServer(context=context, address=("127.0.0.1", int(where)), framer=FramerType.RTU)
    else:
        parity = sys.argv[5] if len(sys.argv) > 5 else "N"
        StartSerialServer(context=context, framer=FramerType.RTU, port=where, baudrate=9600, bytesize=8,
                          parity=parity, stopbits=1)


if __name__ == "__main__":
    main()
