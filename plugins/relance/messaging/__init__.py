"""Templates, MIME building and the SES client."""
