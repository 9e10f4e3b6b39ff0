"""Media processing: sniffing, images, video, scanning."""
