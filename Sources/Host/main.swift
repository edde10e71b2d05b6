import ArgumentParser
print("ensemble")
