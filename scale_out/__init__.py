"""Running the lakehouse scaled out: a local Spark standalone cluster and S3-compatible storage (issue #13)."""
