"""Report stage (``workflow/rules/report.smk``): per-participant and group QC pages
(:mod:`.qc_pages`), the verdict table with its paired tests (:mod:`.verdict`) and the
report's first page in plain words (:mod:`.sentences`, :mod:`.front_page`); settings in
:mod:`.settings`."""
