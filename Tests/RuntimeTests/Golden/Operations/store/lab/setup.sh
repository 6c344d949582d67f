#!/bin/sh
echo "setting up $1"
