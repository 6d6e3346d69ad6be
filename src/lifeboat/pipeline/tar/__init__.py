"""tar streams pushed through chunk by chunk: parsed, watched for small members, extracted."""
