"""Mean-opinion-score (MOS) study, as in the paper's section 3.4: build a study from folders of SR images
(`db.create_study`), let raters score them 1-5 in a browser (`app.create_app`), report MOS, confidence
intervals, the Figure 5 distribution and Wilcoxon signed-rank tests (`report.write_report`).

The web and statistics dependencies (starlette, uvicorn, scipy, matplotlib) are imported where used:
`pip install "srgan[mos]"`.
"""
