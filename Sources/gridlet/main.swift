print("gridlet")
