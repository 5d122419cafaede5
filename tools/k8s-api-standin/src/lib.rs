//! Test support: an HTTPS Kubernetes API stand-in (owned by the API-client work).
