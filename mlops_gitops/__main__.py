from mlops_gitops.cli.app import run

run()
