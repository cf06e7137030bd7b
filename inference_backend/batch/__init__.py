"""Super-resolving whole datasets: find the scans (a folder, a BIDS dataset, a manifest), run
each as ``mrisr run`` would into its own output folder, skip what is already done, record what
failed, on local worker processes or Ray actors that keep their models loaded."""
