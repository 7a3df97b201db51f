"""Generated protobuf and gRPC code for the omniroute.v1 contracts.

Do not edit: `make proto` regenerates every module here from proto/omniroute/v1.
"""
