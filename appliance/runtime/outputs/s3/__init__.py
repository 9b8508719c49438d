"""S3: anonymized screenshots and incremental backups in a bucket."""

from appliance.runtime.outputs.s3.output import S3Output

__all__ = ["S3Output"]
