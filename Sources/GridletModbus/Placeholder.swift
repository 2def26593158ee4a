// GridletModbus
