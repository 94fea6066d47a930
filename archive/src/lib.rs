//! Layer tar streams: safe apply with whiteouts, diff production, compression detection
