"""The map: its settings for the app, the offline basemap and a territory's tile pack."""
