"""nexa router: the one public /v1 API, proxying each route to the service of its modality."""
