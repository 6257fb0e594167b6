# On a machine with a network: fetch what later jobs would download into cache.root, with
# checksums, for compute nodes that run with cache.offline: true.


rule prefetch:
    output:
        CACHE_MANIFEST,
    params:
        needed=[vars(item) for item in CACHE_ITEMS],
    localrule: True
    log:
        f"{OUT}/logs/prefetch.log",
    conda:
        "../../envs/fmri.yaml"
    container:
        CONTAINERS.format(family="fmri")
    script:
        "../scripts/prefetch.py"
