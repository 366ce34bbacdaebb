.PHONY: format lint typecheck test check
format:
	ruff format recon tests bench sample_data
lint:
	ruff check recon tests bench sample_data
typecheck:
	mypy
test:
	python -m pytest -q -n 2
check: lint typecheck test
