"""Write demo/predictions-IN-sample.csv: a small, deterministic, TxGNN-shaped prediction sample."""

import csv
import random
from pathlib import Path

DRUGS = {
    "DB00480": "Lenalidomide",
    "DB01041": "Thalidomide",
    "DB08910": "Pomalidomide",
    "DB00331": "Metformin",
    "DB00945": "Acetylsalicylic acid",
    "DB01076": "Atorvastatin",
    "DB00641": "Simvastatin",
    "DB00682": "Warfarin",
    "DB00619": "Imatinib",
    "DB01254": "Dasatinib",
    "DB00188": "Bortezomib",
    "DB00928": "Azacitidine",
    "DB01262": "Decitabine",
    "DB00987": "Cytarabine",
    "DB00997": "Doxorubicin",
    "DB00563": "Methotrexate",
    "DB00635": "Prednisone",
    "DB01234": "Dexamethasone",
    "DB00338": "Omeprazole",
    "DB00959": "Methylprednisolone",
    "DB00877": "Sirolimus",
    "DB00864": "Tacrolimus",
    "DB01590": "Everolimus",
    "DB00530": "Erlotinib",
    "DB00317": "Gefitinib",
    "DB00398": "Sorafenib",
    "DB01268": "Sunitinib",
    "DB00002": "Cetuximab",
    "DB00072": "Trastuzumab",
    "DB00112": "Bevacizumab",
}
DISEASES = [
    "myeloid leukemia",
    "multiple myeloma",
    "myelodysplastic syndrome",
    "mantle cell lymphoma",
    "follicular lymphoma",
    "chronic lymphocytic leukemia",
    "acute lymphoblastic leukemia",
    "breast cancer",
    "non-small cell lung cancer",
    "colorectal cancer",
    "hepatocellular carcinoma",
    "renal cell carcinoma",
    "glioblastoma",
    "pancreatic cancer",
    "prostate cancer",
    "ovarian cancer",
    "melanoma",
    "type 2 diabetes mellitus",
    "polycystic ovary syndrome",
    "rheumatoid arthritis",
    "systemic lupus erythematosus",
    "psoriasis",
    "Crohn disease",
    "ulcerative colitis",
    "multiple sclerosis",
    "Alzheimer disease",
    "Parkinson disease",
    "amyotrophic lateral sclerosis",
    "pulmonary arterial hypertension",
    "idiopathic pulmonary fibrosis",
    "heart failure",
    "atrial fibrillation",
    "chronic kidney disease",
    "tuberculosis",
    "COVID-19",
    "erythema nodosum leprosum",
    "Kaposi sarcoma",
    "Behcet disease",
    "sarcoidosis",
    "myelofibrosis",
]
LENALIDOMIDE_TOP = [
    ("myeloid leukemia", 0.9949),
    ("mantle cell lymphoma", 0.9921),
    ("follicular lymphoma", 0.9874),
    ("myelofibrosis", 0.9702),
    ("chronic lymphocytic leukemia", 0.9655),
    ("Kaposi sarcoma", 0.9512),
]


def main() -> None:
    rng = random.Random(20261125)
    rows = [("DB00480", "Lenalidomide", disease, score) for disease, score in LENALIDOMIDE_TOP]
    taken = {(d, disease) for d, _, disease, _ in rows}
    for drugbank_id, name in DRUGS.items():
        for disease in rng.sample(DISEASES, 12):
            if (drugbank_id, disease) not in taken:
                taken.add((drugbank_id, disease))
                rows.append((drugbank_id, name, disease, round(rng.uniform(0.50, 0.989), 4)))
    rows.sort(key=lambda row: -row[3])
    out = Path(__file__).resolve().parent.parent / "demo" / "predictions-IN-sample.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["drugbank_id", "drug_name", "potential_indication", "txgnn_score", "rank", "source"])
        for rank, (drugbank_id, name, disease, score) in enumerate(rows, start=1):
            writer.writerow([drugbank_id, name, disease, f"{score:.4f}", rank, "DL"])
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
