"""The ARM edge: an HTTPS server that speaks Microsoft.Compute's REST API for scale sets."""
