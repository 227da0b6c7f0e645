"""The function image: its Dockerfile (targets ``gpu`` and ``cpu``) and its entry command."""
