"""GPU functions: Lambda Managed Instances with accelerators (AWS) and the stack config they take."""
