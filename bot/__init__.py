"""Linli (邻里): a community-service assistant."""
