"""The AWS family beyond S3: EC2 compute, Route53 DNS, and the account inventory, through boto3."""
