"""The shop under test: FastAPI services whose protections switch with SUT_MODE."""
