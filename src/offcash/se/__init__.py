"""The secure element: its interface and a software implementation."""
