// GridletMQTT
