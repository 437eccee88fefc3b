"""The clinic's arithmetic as pure functions: no Django, no database, stdlib and python-stdnum only.

Every threshold is an argument: its value comes from the protocol or the product (data a clinic can read
and change), never from a constant here. Only the constants that *define* a published formula stay in
code (Mosteller's 3600, Cockcroft–Gault's 140, 72 and 0.85, 88.4 µmol/L per mg/dL of creatinine).

Numbers go in as int, float, Decimal or numeric text and come out as Decimal, so a dose is exact to the
digit that the sheet shows. Each module is table-tested in tests/clinical/ against worked examples with
their source written beside them.

- `body`: body surface area (Mosteller), age in whole years on a day.
- `dosing`: dose from mg/m², a percentage reduction, given vs prescribed within a tolerance,
  tocilizumab's maximum dose and how often it may be given, the expected total of CAR-T cells.
- `renal`: creatinine clearance (Cockcroft–Gault) and the renal band of a protocol.
- `astct`: ICE score, CRS and ICANS grades by the ASTCT 2019 consensus.
- `discharge`: length of stay and the dates the restrictions after the infusion hold.
- `disease_activity`: SLEDAI-2K, DORIS, LLDAS, MG-ADL, mRSS, EDSS, MMT-8 and the remission a record may claim.
- `identifiers`: the ISO 7064 Mod 37-2 check character of chain-of-identity ids.
- `calculators`: the named calculators a record field may be computed by.
"""
