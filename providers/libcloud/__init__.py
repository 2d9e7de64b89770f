"""apache-libcloud adapters: storage (and later compute and DNS) for the provider families that are
not S3: Google Cloud Storage, Azure, OpenStack, DigitalOcean, Linode, ..."""
