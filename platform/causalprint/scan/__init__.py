"""The provenance scan: which generative model made each image of a folder or bucket prefix.

``job.run_scan`` runs it; ``image_attributor.ImageAttributor`` is the attribution code path it shares with
single requests; ``report`` is the Parquet report. This file imports nothing, so that importing one module
(the report's helpers, say) does not load torch.
"""
