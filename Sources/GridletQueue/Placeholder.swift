// GridletQueue
