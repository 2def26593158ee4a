// GridletAgent
