print("cfi-sh")
