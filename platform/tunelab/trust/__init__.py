"""Can I trust the winner? `tunelab confirm` retrains the best configurations with new seeds;
`tunelab audit` continues trials the scheduler stopped. The figures from both are in
`tunelab.analysis.trust`."""
