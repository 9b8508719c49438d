"""S3: anonymized screenshots and incremental backups in a bucket (output.py), and the backup
commands (cli.py, which imports boto3 only when one runs)."""
