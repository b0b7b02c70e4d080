"""Devices and packet sources/sinks: pg (packet generator), capture, tap,
af_packet, pcap; host setup helpers."""
