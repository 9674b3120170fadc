#!/usr/bin/env python3
"""Writes a synthetic roster CSV (fictitious people, valid INS keys) to stdout.
Usage: scripts/gen-roster.py N > roster.csv"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
out = sys.stdout
out.write("ins,birth_name,given_names,sex,birth_date,email,address\n")
for i in range(n):
    nir = "1%012d" % (500000000000 + i * 7)
    key = 97 - int(nir) % 97
    out.write(f"{nir}{key:02d},NOM{i},Prenom,M,19{50 + i % 50}-0{1 + i % 9}-1{i % 10},"
              f"p{i}@example.invalid,{i} rue de la Paix 75002 Paris\n")
