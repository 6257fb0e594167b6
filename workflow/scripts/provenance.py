import pandas as pd

from brainrep.io import file_hashes, log_to_file, software_versions

log_to_file(snakemake.log[0])
file_hashes(list(snakemake.input.files)).to_csv(snakemake.output.inputs, sep="\t", index=False)
pd.DataFrame(software_versions().items(), columns=["package", "version"]).to_csv(
    snakemake.output.software, sep="\t", index=False)
pd.DataFrame(snakemake.params.rules).to_csv(snakemake.output.rules, sep="\t", index=False,
                                            na_rep="n/a")
