"""The designs taskstream is measured against, each with taskstream's REST and SSE contract."""
