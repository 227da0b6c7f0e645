# Thin aliases for tasks.py, which needs nothing but Python >= 3.11.
.PHONY: demo test
demo:
	python3 tasks.py demo
test:
	python3 tasks.py test
