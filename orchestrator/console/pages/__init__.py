"""The console's pages, one module per section; each route calls services and renders."""
